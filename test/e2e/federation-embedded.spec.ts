// Two embedded gateways (one process each, SQLite) federating over loopback TLS (federation-scenarios.ts), and
// issue 6's chat features bridge to bridge (chat-features-scenarios.ts), on one pair: the chat features first,
// then the federation scenarios, whose outages restart B.
import { describeChatFeatureScenarios } from './chat-features-scenarios';
import { fedgatePairForFile } from './fedgate-pair-for-file';
import { describeFederationScenarios } from './federation-scenarios';

const pair = fedgatePairForFile('embedded', 'federation-embedded');
describeChatFeatureScenarios('embedded', pair);
describeFederationScenarios('embedded', pair);
