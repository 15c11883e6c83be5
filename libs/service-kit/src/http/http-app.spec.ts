import { BadRequestException, Body, Controller, Get, Module, NotFoundException, Put } from '@nestjs/common';
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
