// Applies the per-origin rate limits to every authenticated federation request (after the X-Matrix guard set
// the origin); a refusal is a 429 M_LIMIT_EXCEEDED with retry_after_ms, audited with reason `rate_limited`.
import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { MatrixError } from '@fedgate/service-kit';
import { defer, finalize, mergeMap, type Observable } from 'rxjs';
import { notesOf, type IngressRequest } from '../federation-request';
import { OriginRateLimited, OriginRateLimiter } from './origin-rate-limiter';

const COUNTED = Symbol('fedgate.rate-limit-counted');

@Injectable()
export class OriginRateLimitInterceptor implements NestInterceptor {
  constructor(private readonly limiter: OriginRateLimiter) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<IngressRequest & { [COUNTED]?: true }>();
    const origin = request.federationOrigin;
    // Global interceptors may be registered more than once (the module's static and dynamic forms): count a request once.
    if (origin === undefined || request[COUNTED]) return next.handle();
    request[COUNTED] = true;
    return defer(async () => {
      try {
        return await this.limiter.enter(origin);
      } catch (error) {
        if (!(error instanceof OriginRateLimited)) throw error;
        notesOf(request).reason = 'rate_limited';
        throw MatrixError.limitExceeded(error.retryAfterMs, `Too many requests from ${origin}`);
      }
    }).pipe(mergeMap((release) => next.handle().pipe(finalize(release))));
  }
}
