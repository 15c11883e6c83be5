import { contentDisposition, fileNameFromDisposition, mediaResponseHeaders } from './serving-headers';

describe('media serving headers', () => {
  it('serves only the spec-listed types inline', () => {
    expect(contentDisposition('image/png', 'a.png')).toBe('inline; filename="a.png"');
    expect(contentDisposition('IMAGE/PNG; x=y', null)).toBe('inline');
    expect(contentDisposition('text/html', 'a.html')).toBe('attachment; filename="a.html"');
    expect(contentDisposition('image/svg+xml', 'a.svg')).toBe('attachment; filename="a.svg"');
  });

  it('encodes names that are not plain ASCII, and reads them back', () => {
    const header = contentDisposition('text/plain', 'naïve "quote".txt');
    expect(header).toBe("inline; filename*=utf-8''na%C3%AFve%20%22quote%22.txt");
    expect(fileNameFromDisposition(header)).toBe('naïve "quote".txt');
    expect(fileNameFromDisposition('attachment; filename="a \\"b\\".bin"')).toBe('a "b".bin');
    expect(fileNameFromDisposition('inline; filename=plain.txt')).toBe('plain.txt');
    expect(fileNameFromDisposition(undefined)).toBeNull();
  });

  it('sandboxes everything it serves', () => {
    expect(mediaResponseHeaders('image/png', null)).toMatchObject({
      'content-security-policy': expect.stringContaining("sandbox; default-src 'none'"),
      'cross-origin-resource-policy': 'cross-origin',
      'x-content-type-options': 'nosniff',
    });
  });
});
