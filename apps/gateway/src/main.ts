// Embedded mode entry point (`npm start`): every service in one process.
export async function main(): Promise<void> {
  process.stdout.write('fedgate: the embedded gateway is not assembled yet\n');
}

if (require.main === module) {
  void main();
}
