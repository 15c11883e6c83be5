// Embedded mode entry point (`npm start`): every service in one process, data under config.dataDir.
import { runService } from '@fedgate/service-kit';
import { gatewayDefinition } from './gateway.modules';

export function main(): void {
  runService(gatewayDefinition);
}

if (require.main === module) {
  main();
}
