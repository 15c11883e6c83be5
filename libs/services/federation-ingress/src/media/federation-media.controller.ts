// Media for other servers (server-server "Content Repository"): only media that originates here,
// answered as multipart/mixed (empty JSON metadata, then the bytes with their type and disposition).
import { Controller, Get, Inject, Param, Query, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { buildMultipartMixed, CONTENT_REPOSITORY, contentDisposition, ContentRepository, parseThumbnailQuery, type ServedContent } from '@fedgate/media';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { XMatrixGuard } from '../auth/x-matrix.guard';

function multipart(reply: FastifyReply, content: ServedContent): Buffer {
  const { contentType, body } = buildMultipartMixed({}, { contentType: content.contentType, contentDisposition: contentDisposition(content.contentType, content.uploadName), body: content.bytes });
  reply.header('content-type', contentType);
  return body;
}

@Controller('_matrix/federation/v1/media')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class FederationMediaController {
  constructor(@Inject(CONTENT_REPOSITORY) private readonly media: ContentRepository) {}

  @Get('download/:mediaId')
  async download(@Param('mediaId') mediaId: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return multipart(reply, await this.media.downloadLocal(mediaId));
  }

  @Get('thumbnail/:mediaId')
  async thumbnail(@Param('mediaId') mediaId: string, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const request = parseThumbnailQuery(query);
    return multipart(reply, await this.media.thumbnail(this.media.serverName, mediaId, request, { allowRemote: false }));
  }
}
