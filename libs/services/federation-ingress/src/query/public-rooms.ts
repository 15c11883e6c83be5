// This server's public room directory as federation `publicRooms` serves it (the paging: @fedgate/store's
// publicRoomsPage; the request: @fedgate/service-kit's public-rooms-request).
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { localPublicRoomsAnswer, localPublicRoomsQuery, type PublicRoomsRequest } from '@fedgate/service-kit';
import { publicRoomsPage } from '@fedgate/store';

@Injectable()
export class PublicRooms {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  async answer(request: PublicRoomsRequest) {
    return localPublicRoomsAnswer(await publicRoomsPage(this.store, this.identity.serverName, localPublicRoomsQuery(request)));
  }
}
