// The content repository for the chat platform: uploads as an application-service user, the
// authenticated /_matrix/client/v1/media/* reads and the deprecated /_matrix/media/* ones.
import { Controller, Get, HttpCode, Inject, Param, Post, Put, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CONTENT_REPOSITORY, ContentRepository, mediaResponseHeaders, parseThumbnailQuery, type ServedContent } from '@fedgate/media';
import { MatrixError, parseBooleanFlag } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { OptionalAppServiceAuthGuard } from './optional-auth.guard';

const LEGACY = ['_matrix/media/v3', '_matrix/media/r0'];
const AUTHENTICATED = '_matrix/client/v1/media';

function uploadedContent(request: FastifyRequest, fileName: unknown, requester: Requester) {
  // The body is streamed to disk as it arrives (service-kit leaves an upload's body unread).
  const bytes = request.uploadStream ?? request.rawBody ?? (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));
  if (fileName !== undefined && typeof fileName !== 'string') throw MatrixError.invalidParam('filename must be a single string');
  const contentType = request.headers['content-type']?.trim() || 'application/octet-stream';
  return { bytes, contentType, uploadName: fileName || null, uploader: requester.userId };
}

function send(reply: FastifyReply, content: ServedContent, fileName?: string): Buffer {
  reply.headers(mediaResponseHeaders(content.contentType, fileName ?? content.uploadName));
  return content.bytes;
}

@Controller()
@UseGuards(AppServiceAuthGuard)
export class MediaUploadController {
  constructor(@Inject(CONTENT_REPOSITORY) private readonly media: ContentRepository) {}

  @Post(LEGACY.map((prefix) => `${prefix}/upload`))
  @HttpCode(200)
  async upload(@CurrentRequester() requester: Requester, @Req() request: FastifyRequest, @Query('filename') fileName: unknown) {
    const { contentUri } = await this.media.upload(uploadedContent(request, fileName, requester));
    return { content_uri: contentUri };
  }

  @Post('_matrix/media/v1/create')
  @HttpCode(200)
  async create(@CurrentRequester() requester: Requester) {
    const { contentUri, unusedExpiresAt } = await this.media.reserve(requester.userId);
    return { content_uri: contentUri, unused_expires_at: unusedExpiresAt };
  }

  @Put(LEGACY.map((prefix) => `${prefix}/upload/:serverName/:mediaId`))
  async uploadReserved(
    @CurrentRequester() requester: Requester,
    @Req() request: FastifyRequest,
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Query('filename') fileName: unknown,
  ) {
    await this.media.uploadReserved(serverName, mediaId, uploadedContent(request, fileName, requester));
    return {};
  }

  @Get([...LEGACY.map((prefix) => `${prefix}/config`), `${AUTHENTICATED}/config`])
  config() {
    return this.media.config();
  }

  @Get([`${AUTHENTICATED}/download/:serverName/:mediaId`, `${AUTHENTICATED}/download/:serverName/:mediaId/:fileName`])
  async download(@Param() params: Record<string, string>, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.media.download(params.serverName, params.mediaId, { allowRemote: true }), params.fileName);
  }

  @Get(`${AUTHENTICATED}/thumbnail/:serverName/:mediaId`)
  async thumbnail(@Param() params: Record<string, string>, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const request = parseThumbnailQuery(query);
    return send(reply, await this.media.thumbnail(params.serverName, params.mediaId, request, { allowRemote: true }));
  }
}

/**
 * The deprecated legacy reads, kept for bridges that build plain download URLs: with an AS token, or
 * without one only when `clientServer.unauthenticatedLegacyMedia` is set. A token, when given, must be valid. This listener serves only the chat platform, so no freeze is applied.
 */
@Controller(LEGACY)
@UseGuards(OptionalAppServiceAuthGuard)
export class LegacyMediaController {
  constructor(@Inject(CONTENT_REPOSITORY) private readonly media: ContentRepository) {}

  @Get(['download/:serverName/:mediaId', 'download/:serverName/:mediaId/:fileName'])
  async download(@Param() params: Record<string, string>, @Query('allow_remote') remote: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.media.download(params.serverName, params.mediaId, { allowRemote: parseBooleanFlag(remote, 'allow_remote', true) }), params.fileName);
  }

  @Get('thumbnail/:serverName/:mediaId')
  async thumbnail(@Param() params: Record<string, string>, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const request = parseThumbnailQuery(query);
    return send(reply, await this.media.thumbnail(params.serverName, params.mediaId, request, { allowRemote: parseBooleanFlag(query.allow_remote, 'allow_remote', true) }));
  }
}
