// Notes the errcode a handler failed with, so the audit record says why a request was refused.
import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { toMatrixError } from '@fedgate/service-kit';
import { catchError, type Observable, throwError } from 'rxjs';
import { notesOf, type IngressRequest } from '../federation-request';

@Injectable()
export class AuditReasonInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<IngressRequest>();
    return next.handle().pipe(
      catchError((error: unknown) => {
        const notes = notesOf(request);
        notes.reason ??= toMatrixError(error)?.errcode ?? 'M_UNKNOWN';
        return throwError(() => error);
      }),
    );
  }
}
