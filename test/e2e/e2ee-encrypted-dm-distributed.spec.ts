// Issue 13: an encrypted DM between two distributed fedgates (MongoDB-wire, JetStream); see
// e2ee-encrypted-dm-scenarios.ts.
import { describeEncryptedDmBetweenFedgates } from './e2ee-encrypted-dm-scenarios';

jest.setTimeout(240_000);

describeEncryptedDmBetweenFedgates('distributed');
