// Issue 13's devices and keys through the AS API and over federation, distributed shape; see
// e2ee-devices-and-keys-scenarios.ts.
import { describeE2eeDeviceAndKeyScenarios } from './e2ee-devices-and-keys-scenarios';

jest.setTimeout(180_000);

describeE2eeDeviceAndKeyScenarios('distributed');
