// Two distributed fedgates (four service processes each, sharing the suite's NATS and MongoDB-wire
// database under their own bus prefix and database) federating over loopback TLS (federation-scenarios.ts), and
// issue 6's chat features bridge to bridge (chat-features-scenarios.ts), on one pair: the chat features first,
// then the federation scenarios, whose outages restart B.
import { describeChatFeatureScenarios } from './chat-features-scenarios';
import { fedgatePairForFile } from './fedgate-pair-for-file';
import { describeFederationScenarios } from './federation-scenarios';

const pair = fedgatePairForFile('distributed', 'federation-distributed');
describeChatFeatureScenarios('distributed', pair);
describeFederationScenarios('distributed', pair);
