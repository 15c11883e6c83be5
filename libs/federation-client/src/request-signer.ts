/**
 * Port for federation request authentication: returns the whole `Authorization` header value
 * (e.g. `X-Matrix origin="…",destination="…",key="…",sig="…"`). `uri` is the path with query
 * string, `destination` the server name before delegation, `content` the parsed JSON body.
 */
export type RequestSigner = (method: string, uri: string, destination: string, content?: unknown) => string | Promise<string>;
