// Two embedded gateways (one process each, SQLite) federating over loopback TLS; see federation-scenarios.ts.
import { describeFederationScenarios } from './federation-scenarios';

describeFederationScenarios('embedded');
