// Placeholder until the real starter lands: see docs/testing.md for the order of preference.
export interface RunningService {
  url: string;
}
export async function startMongo(): Promise<RunningService> {
  throw new Error('startMongo: not implemented yet');
}
export async function stopMongo(): Promise<void> {}
