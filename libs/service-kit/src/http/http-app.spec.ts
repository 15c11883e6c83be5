import { BadRequestException, Body, Controller, Get, Module, NotFoundException, Put } from '@nestjs/common';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createSelfSignedCertificate } from '../first-start/tls-certificate';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import pino from 'pino';
import { createHttpApp, listenHttpApp } from './http-app';
import { MatrixError } from './matrix-error';

@Controller()
class ProbeController {
  @Get('/ok')
  ok() {
    return { ok: true };
  }
  @Put('/echo/:id')
  echo(@Body() body: unknown) {
    return { body };
  }
  @Get('/missing-room')
  missing() {
    throw new NotFoundException('Room not found');
  }
  @Get('/limited')
  limited() {
    throw MatrixError.limitExceeded(1500);
  }
  @Get('/invalid')
  invalid() {
    throw new BadRequestException(['content.body must be a string', 'type is required']);
  }
  @Get('/protocol-error')
  protocolError() {
    throw Object.assign(new Error('bad signature'), { errcode: 'M_FORBIDDEN' });
  }
  @Get('/crash')
  crash() {
    throw new Error('secret internals');
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

describe('createHttpApp', () => {
  let app: NestFastifyApplication;
  let baseUrl: string;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    const listener = { name: 'test', bindAddress: '127.0.0.1', port: 0, maxBodyBytes: 1024 };
    app = await createHttpApp({ module: ProbeModule, logger, listener });
    baseUrl = await listenHttpApp(app, listener);
  });
  afterAll(() => app.close());

  // A real socket rather than fastify's inject: requests go through the same path as in production.
  const inject = async (options: { method: string; url: string; headers?: Record<string, string>; payload?: string | Buffer }) => {
    const res = await fetch(baseUrl + options.url, { method: options.method, headers: options.headers, body: options.payload });
    const text = await res.text();
    return { statusCode: res.status, headers: Object.fromEntries(res.headers) as Record<string, string | undefined>, json: (): any => JSON.parse(text) };
  };

  it('serves routes', async () => {
    const res = await inject({ method: 'GET', url: '/ok' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it('parses JSON bodies, with or without a content type', async () => {
    const typed = await inject({ method: 'PUT', url: '/echo/1', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: '{"a":1}' });
    expect(typed.json()).toEqual({ body: { a: 1 } });
    const untyped = await inject({ method: 'PUT', url: '/echo/1', payload: Buffer.from('{"b":2}') });
    expect(untyped.json()).toEqual({ body: { b: 2 } });
  });

  it('answers malformed JSON with 400 M_NOT_JSON', async () => {
    const res = await inject({ method: 'PUT', url: '/echo/1', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errcode).toBe('M_NOT_JSON');
  });

  it('answers an oversized body with 413 M_TOO_LARGE', async () => {
    const res = await inject({ method: 'PUT', url: '/echo/1', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(2000) }) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ errcode: 'M_TOO_LARGE', error: expect.any(String) });
  });

  it('answers unknown routes with 404 M_UNRECOGNIZED, and a handler 404 with M_NOT_FOUND', async () => {
    const unknown = await inject({ method: 'GET', url: '/_matrix/federation/v9/nothing' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().errcode).toBe('M_UNRECOGNIZED');
    const missing = await inject({ method: 'GET', url: '/missing-room' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ errcode: 'M_NOT_FOUND', error: 'Room not found' });
  });

  it('sends MatrixError extra fields, validation errors as M_BAD_JSON, library errcodes with their status', async () => {
    const limited = await inject({ method: 'GET', url: '/limited' });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({ errcode: 'M_LIMIT_EXCEEDED', error: 'Too many requests', retry_after_ms: 1500 });
    const invalid = await inject({ method: 'GET', url: '/invalid' });
    expect(invalid.headers['retry-after']).toBeUndefined();
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toEqual({ errcode: 'M_BAD_JSON', error: 'content.body must be a string; type is required' });
    const forbidden = await inject({ method: 'GET', url: '/protocol-error' });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toEqual({ errcode: 'M_FORBIDDEN', error: 'bad signature' });
  });

  // Issue 12: a retryable answer (429, or ingress's 503 while our bus is down) carried no Retry-After header.
  it('sends Retry-After (whole seconds, rounded up) with every error that carries retry_after_ms', async () => {
    const limited = await inject({ method: 'GET', url: '/limited' });
    expect(limited.headers['retry-after']).toBe('2');
  });

  it('hides unexpected errors behind 500 M_UNKNOWN', async () => {
    const res = await inject({ method: 'GET', url: '/crash' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
  });
});

@Controller()
class EdgeProbeController {
  @Get('/ok')
  ok() {
    return { ok: true };
  }
  @Put('/echo/:id')
  echo(@Body() body: unknown) {
    return { body };
  }
  @Put('/big/:id')
  big(@Body() body: unknown) {
    return { size: JSON.stringify(body).length };
  }
  @Get('/param/:value')
  param() {
    return { ok: true };
  }
  @Get('/slow')
  async slow() {
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    return { slow: true };
  }
}

@Module({ controllers: [EdgeProbeController] })
class EdgeProbeModule {}

/** Writes `request` on a raw socket and collects everything until the server closes it. */
function rawExchange(port: number, request: string, writeMore?: (socket: Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(request);
    writeMore?.(socket);
  });
}

describe('createHttpApp at the hostile edge (issue 11)', () => {
  let app: NestFastifyApplication;
  let baseUrl: string;
  let port: number;

  beforeAll(async () => {
    const listener = {
      name: 'edge-test',
      bindAddress: '127.0.0.1',
      port: 0,
      maxBodyBytes: 4 * 1024,
      largeBodyRoutes: { pattern: /^\/big\//, maxBodyBytes: 2 * 1024 * 1024 },
      json: { maxDepth: 32, strictNumbers: true },
      timeouts: { headersMs: 300, requestMs: 600, keepAliveMs: 300 },
    };
    app = await createHttpApp({ module: EdgeProbeModule, logger: pino({ level: 'silent' }), listener });
    baseUrl = await listenHttpApp(app, listener);
    port = Number(new URL(baseUrl).port);
  });
  afterAll(() => app.close());

  const send = async (method: string, url: string, payload?: string | Buffer, contentType: string | null = 'application/json') => {
    const res = await fetch(baseUrl + url, { method, headers: payload === undefined || contentType === null ? {} : { 'content-type': contentType }, body: payload });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  };

  it('refuses a deeply nested body with 400 M_BAD_JSON before parsing it, on every route (defect 1)', async () => {
    const deep = '['.repeat(1024 * 1024);
    expect(await send('PUT', '/big/1', deep)).toEqual({ status: 400, body: { errcode: 'M_BAD_JSON', error: expect.stringContaining('nesting deeper than 32') } });
    expect(await send('PUT', '/big/1', Buffer.from(deep), null)).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await send('PUT', '/echo/1', '{"a":'.repeat(40) + '1' + '}'.repeat(40))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await send('PUT', '/echo/1', '{"a":'.repeat(20) + '1' + '}'.repeat(20))).toMatchObject({ status: 200 });
  });

  it('gives every route but the large-body ones the small body limit (defect 1)', async () => {
    const body = JSON.stringify({ pad: 'x'.repeat(64 * 1024) });
    expect(await send('PUT', '/echo/1', body)).toMatchObject({ status: 413, body: { errcode: 'M_TOO_LARGE' } });
    expect(await send('PUT', '/big/1', body)).toEqual({ status: 200, body: { size: body.length } });
  });

  it('applies canonical JSON number rules when the listener asks for them: 400 M_BAD_JSON (defect 10)', async () => {
    for (const payload of ['{"n":1.5}', '{"n":9007199254740992}', '{"n":-9007199254740992}', '{"n":1e3}', '{"a":[{"b":-0}]}']) {
      expect(await send('PUT', '/echo/1', payload)).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    }
    expect(await send('PUT', '/echo/1', '{"n":9007199254740991}')).toEqual({ status: 200, body: { body: { n: 9007199254740991 } } });
  });

  it('answers an overlong path parameter with one Matrix error response (defect 11)', async () => {
    const response = await rawExchange(port, `GET /param/${'a'.repeat(2000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(response.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 400']);
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toEqual({ errcode: 'M_INVALID_PARAM', error: expect.stringContaining('path parameter') });
    expect(await send('GET', `/param/${'a'.repeat(900)}`)).toEqual({ status: 200, body: { ok: true } });
  });

  const expectTimedOut = (response: string) => {
    expect(response.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 408']);
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toEqual({ errcode: 'M_UNKNOWN', error: expect.any(String) });
  };

  it('closes a connection whose headers never end, with a Matrix 408 (defect 11)', async () => {
    expectTimedOut(await rawExchange(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n'));
  });

  it('closes a connection whose body never ends, with a Matrix 408 (defect 11)', async () => {
    expectTimedOut(await rawExchange(port, 'PUT /echo/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'));
  });

  it('closes a connection that sends nothing, and an idle keep-alive connection (defect 11)', async () => {
    expectTimedOut(await rawExchange(port, ''));
    const kept = await rawExchange(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(kept.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200']);
  });

  it('still answers a request whose handler takes longer than the request timeout', async () => {
    expect(await send('GET', '/slow')).toEqual({ status: 200, body: { slow: true } });
  });
});

describe('createHttpApp over TLS (issue 11 defect 11)', () => {
  let app: NestFastifyApplication;
  let port: number;

  beforeAll(async () => {
    const listener = {
      name: 'edge-tls-test',
      bindAddress: '127.0.0.1',
      port: 0,
      tls: createSelfSignedCertificate('localhost'),
      maxBodyBytes: 4 * 1024,
      timeouts: { headersMs: 300, requestMs: 600, keepAliveMs: 300, handshakeMs: 300 },
    };
    app = await createHttpApp({ module: EdgeProbeModule, logger: pino({ level: 'silent' }), listener });
    port = Number(new URL(await listenHttpApp(app, listener)).port);
  });
  afterAll(() => app.close());

  it('closes a connection that never starts its TLS handshake', async () => {
    expect(await rawExchange(port, '')).toBe('');
  });

  it('closes a TLS connection whose headers never end', async () => {
    const received = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      socket.write('GET /ok HTTP/1.1\r\nHost: x\r\n');
    });
    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 408']);
  });
});
