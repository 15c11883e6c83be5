import { buildMultipartMixed, MultipartError, multipartBoundary, parseFederationMedia, parseMultipart } from './multipart-media';

describe('multipart/mixed media answers', () => {
  it('round-trips bytes with their type and disposition', () => {
    const bytes = Buffer.from([0, 13, 10, 45, 45, 255, 1]);
    const built = buildMultipartMixed({}, { contentType: 'image/png', contentDisposition: 'inline; filename="a.png"', body: bytes });
    expect(built.contentType).toMatch(/^multipart\/mixed; boundary=[0-9a-f]{32}$/);
    expect(parseFederationMedia(built.contentType, built.body)).toEqual({ kind: 'bytes', contentType: 'image/png', contentDisposition: 'inline; filename="a.png"', body: bytes, metadata: {} });
  });

  it('round-trips a Location redirect', () => {
    const built = buildMultipartMixed({}, { location: 'https://cdn.example/x' });
    expect(parseFederationMedia(built.contentType, built.body)).toEqual({ kind: 'location', location: 'https://cdn.example/x', metadata: {} });
  });

  it('parses what another implementation may send: quoted boundary, preamble, LWS after the boundary, no part headers', () => {
    const body = Buffer.from('preamble\r\n--b:x\r\nContent-Type: application/json\r\n\r\n{"k":1}\r\n--b:x \r\n\r\nraw\r\n--b:x--\r\nepilogue', 'latin1');
    const parsed = parseFederationMedia('Multipart/Mixed; boundary="b:x"', body);
    expect(parsed).toMatchObject({ kind: 'bytes', contentType: 'application/octet-stream', metadata: { k: 1 } });
    expect((parsed as { body: Buffer }).body.toString()).toBe('raw');
  });

  it('refuses malformed answers', () => {
    expect(() => multipartBoundary('application/json')).toThrow(MultipartError);
    expect(() => multipartBoundary('multipart/mixed')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('--b\r\nno end'), 'b')).toThrow(MultipartError);
    const onePart = Buffer.from('--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--');
    expect(() => parseFederationMedia('multipart/mixed; boundary=b', onePart)).toThrow('expected 2 parts');
    const notJson = Buffer.from('--b\r\n\r\nnope\r\n--b\r\n\r\nx\r\n--b--');
    expect(() => parseFederationMedia('multipart/mixed; boundary=b', notJson)).toThrow('not JSON');
    const many = Buffer.from(`${'--b\r\n\r\nx\r\n'.repeat(9)}--b--`);
    expect(() => parseMultipart(many, 'b')).toThrow('more than 8 parts');
  });
});
