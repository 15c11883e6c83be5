// Issue 6's chat features bridge to bridge over two embedded gateways; see chat-features-scenarios.ts.
import { describeChatFeatureScenarios } from './chat-features-scenarios';

describeChatFeatureScenarios('embedded');
