import { Module } from '@nestjs/common';
import { AccountData } from './account-data/account-data';
import { AccountDataController } from './account-data/account-data.controller';
import { AccountController, VersionsController } from './client-server/account.controller';
import { AppServicePingController } from './client-server/appservice-ping.controller';
import { AppServiceAuthGuard } from './client-server/requester';
import { DirectoryController } from './client-server/directory.controller';
import { EphemeralController } from './client-server/ephemeral.controller';
import { ProfileController } from './client-server/profile.controller';
import { RoomsController } from './client-server/rooms.controller';
import { RoomHistoryController } from './client-server/room-history.controller';
import { OpenIdController } from './client-server/openid.controller';
import { DevicesController } from './e2ee/devices.controller';
import { KeysController } from './e2ee/keys.controller';
import { ToDeviceController } from './e2ee/to-device.controller';
import { SignaturesController } from './e2ee/signatures.controller';
import { DeviceListOutbox } from './e2ee/device-list-outbox';
import { RemoteKeys } from './e2ee/remote-keys';
import { RemoteDeviceLists } from './e2ee/remote-device-lists';
import { FEDERATION_CLIENT, SERVER_IDENTITY, STORE, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { ChatSyncWorkers } from './delivery/chat-sync-workers';
import { mediaControllers, mediaProviders } from './media';
import { AliasDirectory } from './directory/alias-directory';
import { RoomDirectory } from './directory/room-directory';
import { EphemeralSender } from './ephemeral/ephemeral-sender';
import { PrivateReceipts } from './ephemeral/private-receipts';
import { RemotePublicRooms } from './directory/remote-public-rooms';
import { PublicRoomsController } from './client-server/public-rooms.controller';
import { Profiles } from './profile/profiles';
import { registryProvider } from './registry.provider';
import { RoomActions } from './rooms/room-actions';
import { RoomCommands } from './rooms/room-commands';
import { RoomView } from './rooms/room-view';
import { RemoteTimestamps } from './rooms/remote-timestamp';
import { SynapseAdminController } from './admin/synapse-admin.controller';
import { AccountDeactivationController } from './lifecycle/account-deactivation.controller';
import { RoomDeletion } from './lifecycle/room-deletion';
import { RoomVisibility } from './lifecycle/room-visibility';
import { UserDeactivation } from './lifecycle/user-deactivation';
import { ClientHierarchyController } from './spaces/hierarchy.controller';
import { UpgradeController } from './client-server/upgrade.controller';
import { RoomUpgrades } from './rooms/room-upgrade';
import { RemoteHierarchies } from './spaces/remote-hierarchy';
import { SpaceHierarchy } from './spaces/space-hierarchy';
import { ThirdPartyInviteSender } from './third-party-invites/third-party-invite-sender';

/**
 * chat-sync on the client-server listener: the client-server API subset application services call
 * (auth by as_token, `user_id=` assertion). Needs the platform tokens and FEDGATE_CONFIG.
 */
@Module({
  controllers: [
    VersionsController,
    AccountController,
    AppServicePingController,
    RoomsController,
    ProfileController,
    DirectoryController,
    EphemeralController,
    AccountDeactivationController,
    SynapseAdminController,
    DevicesController,
    KeysController,
    ToDeviceController,
    ClientHierarchyController,
    UpgradeController,
    SignaturesController,
    AccountDataController,
    RoomHistoryController,
    OpenIdController,
    PublicRoomsController,
    ...mediaControllers,
  ],
  providers: [
    registryProvider,
    AppServiceAuthGuard,
    RoomCommands,
    RoomView,
    RoomActions,
    AliasDirectory,
    RoomDirectory,
    Profiles,
    EphemeralSender,
    PrivateReceipts,
    RemotePublicRooms,
    DeviceListOutbox,
    RemoteKeys,
    {
      provide: RemoteDeviceLists,
      inject: [STORE, FEDERATION_CLIENT, SERVER_IDENTITY, SERVICE_LOGGER],
      useFactory: (store: Store, federation: FederationHttpClient, identity: ServerIdentity, logger: Logger) =>
        new RemoteDeviceLists(store, federation, identity.serverName, { onRefused: (details) => logger.warn(details, 'remote device list resync failed') }),
    },
    UserDeactivation,
    RoomDeletion,
    RoomVisibility,
    RemoteHierarchies,
    SpaceHierarchy,
    RoomUpgrades,
    AccountData,
    RemoteTimestamps,
    ThirdPartyInviteSender,
    ...mediaProviders,
  ],
})
export class ChatSyncModule {}

/** chat-sync's workers (no HTTP): room log and EDU fan-out, per-AS durable queues and the pusher. */
@Module({
  providers: [registryProvider, ChatSyncWorkers],
  exports: [ChatSyncWorkers],
})
export class ChatSyncWorkersModule {}
