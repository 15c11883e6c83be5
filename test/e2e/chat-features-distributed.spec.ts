// Issue 6's chat features bridge to bridge over two distributed fedgates (four processes each, shared
// NATS and MongoDB-wire under their own prefix and database); see chat-features-scenarios.ts.
import { describeChatFeatureScenarios } from './chat-features-scenarios';

describeChatFeatureScenarios('distributed');
