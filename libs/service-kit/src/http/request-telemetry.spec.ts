// Issue 18, defects 1 and 2: what a request leaves behind in metrics, logs and error bodies.
import { Controller, Get, Module, Query } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Writable } from 'node:stream';
import type { FedgateConfig } from '@fedgate/config';
import pino from 'pino';
import { createLogger } from '../logger';
import { createServiceTelemetry, type ServiceTelemetry } from '../telemetry-hook';
import { createHttpApp, listenHttpApp } from './http-app';
import { MatrixError } from './matrix-error';

const TOKEN = 'syt_secret_token_that_must_never_leak';

@Controller()
class ProbeController {
  @Get('/rooms/:roomId')
  room() {
    return {};
  }
  @Get('/echo-query')
  echo(@Query('access_token') token: string) {
    throw MatrixError.forbidden(`refused request /echo-query?access_token=${token}`);
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

describe('request telemetry (issue 18: metric labels and tokens)', () => {
  let app: NestFastifyApplication;
  let baseUrl: string;
  let telemetry: ServiceTelemetry;
  const lines: string[] = [];

  beforeAll(async () => {
    const config = { telemetry: {} } as unknown as FedgateConfig;
    telemetry = createServiceTelemetry(config, 'probe', pino({ level: 'silent' }));
    const listener = { name: 'federation', bindAddress: '127.0.0.1', port: 0, maxBodyBytes: 1024 };
    // The logger every process uses, writing where the test reads.
    const logger = createLogger('probe', 'info', new Writable({ write: (chunk, _e, done) => (lines.push(chunk.toString()), done()) }));
    app = await createHttpApp({ module: ProbeModule, logger, listener, telemetry });
    baseUrl = await listenHttpApp(app, listener);
  });
  afterAll(async () => {
    await app.close();
    await telemetry.shutdown?.();
  });

  it('defect 1: unmatched URLs share one route label, so padded requests add no series', async () => {
    for (let i = 0; i < 50; i++) await fetch(`${baseUrl}/no/such/route/${'x'.repeat(i)}?pad=${i}`);
    await fetch(`${baseUrl}/rooms/!a:b`);
    await fetch(`${baseUrl}/rooms/!c:d`);
    const body = (await telemetry.metrics!()).body;
    const series = body.split('\n').filter((line) => line.startsWith('fedgate_http_request_duration_seconds_count'));
    expect(series).toHaveLength(2);
    expect(body).toContain('route="unmatched"');
    expect(body).toContain('route="/rooms/:roomId"');
    expect(body).not.toContain('pad=');
    expect(body).not.toContain('/no/such');
  });

  it('defect 2: a ?access_token= is in no log line, no metric label and no error body', async () => {
    const res = await fetch(`${baseUrl}/echo-query?access_token=${TOKEN}&user_id=@a:b`);
    expect(res.status).toBe(403);
    const text = await res.text();
    expect(text).not.toContain(TOKEN);
    expect(JSON.parse(text).error).toContain('[REDACTED]');
    await fetch(`${baseUrl}/nowhere?access_token=${TOKEN}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const logged = lines.join('');
    expect(logged).toContain('/echo-query?access_token=[REDACTED]');
    expect(logged).not.toContain(TOKEN);
    expect((await telemetry.metrics!()).body).not.toContain(TOKEN);
  });
});


describe('the metrics listener (issue 18 defect 2)', () => {
  it('binds loopback unless telemetry.metricsBindAddress says otherwise', async () => {
    const lines: string[] = [];
    const logger = createLogger('probe', 'info', new Writable({ write: (chunk, _e, done) => (lines.push(chunk.toString()), done()) }));
    const telemetry = createServiceTelemetry({ telemetry: { metricsPort: 0 } } as unknown as FedgateConfig, 'probe', logger);
    try {
      await telemetry.start!();
      const started = JSON.parse(lines.find((line) => line.includes('metrics served'))!);
      expect(started.host).toBe('127.0.0.1');
      expect((await fetch(`http://127.0.0.1:${started.port}/metrics`)).status).toBe(200);
    } finally {
      await telemetry.shutdown!();
    }
  });
});

describe('the process logger (issue 18 defect 2)', () => {
  it('redacts tokens from any line, whatever logged them', () => {
    const lines: string[] = [];
    const logger = createLogger('probe', 'info', new Writable({ write: (chunk, _e, done) => (lines.push(chunk.toString()), done()) }));
    logger.warn({ headers: { authorization: `Bearer ${TOKEN}` }, registration: { as_token: TOKEN, hs_token: TOKEN } }, `calling /push?access_token=${TOKEN}`);
    logger.child({ url: `/x?user_id=@a:b&access_token=${TOKEN}` }).error(new Error(`failed for access_token=${TOKEN}`));
    expect(lines).toHaveLength(2);
    expect(lines.join('')).not.toContain(TOKEN);
    expect(JSON.parse(lines[0]).registration).toEqual({ as_token: '[REDACTED]', hs_token: '[REDACTED]' });
  });
});
