export { ContentRepository, type ContentRepositoryOptions, type NewContent, type ServedContent, type ReadOptions } from './content-repository';
export { FileBlobStore, MemoryBlobStore, blobKey, type BlobStore } from './blob-store';
export { checkMediaAddress, isValidMediaId, mxcUri, newMediaId } from './media-id';
export { buildMultipartMixed, multipartBoundary, parseFederationMedia, parseMultipart, MultipartError, type FederationMediaContent, type MediaPart } from './multipart-media';
export { FederationMediaSource, type FetchedMedia, type RemoteMediaOptions, type RemoteMediaSource } from './remote-media';
export { MEDIA_CONTENT_SECURITY_POLICY, contentDisposition, essenceOf, fileNameFromDisposition, isInlineSafe, mediaResponseHeaders } from './serving-headers';
export { makeThumbnail, isThumbnailable, thumbnailVariant, ThumbnailError, MAX_THUMBNAIL_SOURCE_PIXELS, type Thumbnail, type ThumbnailMethod, type ThumbnailOutcome, type ThumbnailRequest } from './thumbnailer';
export { parseThumbnailQuery } from './thumbnail-query';
export { CONTENT_REPOSITORY, contentRepositoryProvider, mediaDirectory } from './content-repository.provider';
