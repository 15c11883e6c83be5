// Issue 13: an encrypted DM between two embedded fedgates; see e2ee-encrypted-dm-scenarios.ts.
import { describeEncryptedDmBetweenFedgates } from './e2ee-encrypted-dm-scenarios';

jest.setTimeout(180_000);

describeEncryptedDmBetweenFedgates('embedded');
