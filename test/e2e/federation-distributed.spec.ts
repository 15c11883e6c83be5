// Two distributed fedgates (four service processes each, sharing the suite's NATS and MongoDB-wire
// database under their own bus prefix and database) federating over loopback TLS; see federation-scenarios.ts.
import { describeFederationScenarios } from './federation-scenarios';

describeFederationScenarios('distributed');
