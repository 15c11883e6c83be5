// Placeholder until the real starter lands: see docs/testing.md for the order of preference.
export interface RunningService {
  url: string;
}
export async function startNats(): Promise<RunningService> {
  throw new Error('startNats: not implemented yet');
}
export async function stopNats(): Promise<void> {}
