import { Body, Controller, Param, Put, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import type { JsonObject } from '@fedgate/protocol';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import { notesOf, type IngressRequest } from '../federation-request';
import { TransactionProcessor } from './transaction-processor';

@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class TransactionController {
  constructor(private readonly processor: TransactionProcessor) {}

  @Put('send/:txnId')
  async send(@Param('txnId') txnId: string, @Body() body: unknown, @Req() request: IngressRequest): Promise<JsonObject> {
    const notes = notesOf(request);
    notes.txnId = txnId;
    const counts = body as { pdus?: unknown; edus?: unknown } | null;
    if (Array.isArray(counts?.pdus)) notes.pduCount = counts.pdus.length;
    if (Array.isArray(counts?.edus)) notes.eduCount = counts.edus.length;
    const result = await this.processor.process(request.federationOrigin!, txnId, body);
    notes.details = { replayed: result.replayed, refused: result.refused, response: result.response };
    if (result.refused.length > 0) notes.reason = 'some_refused';
    return result.response;
  }
}
