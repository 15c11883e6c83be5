// Writes the run's counts to the file given as `outputFile` for tools/test.mjs. jest's own --json output
// serialises every failure's details, and a failure carrying a circular object (a client library's error
// that points back at its event) made it throw, leaving no report and a summary of "0 passed".
const { mkdirSync, writeFileSync } = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig, options) {
    this.outputFile = options.outputFile.replace('<rootDir>', globalConfig.rootDir);
  }

  onRunComplete(_contexts, results) {
    const counts = {
      numTotalTests: results.numTotalTests,
      numPassedTests: results.numPassedTests,
      numFailedTests: results.numFailedTests,
      numPendingTests: results.numPendingTests,
      numTodoTests: results.numTodoTests,
      numRuntimeErrorTestSuites: results.numRuntimeErrorTestSuites,
      failedFiles: results.testResults.filter((r) => r.numFailingTests > 0 || r.testExecError).map((r) => r.testFilePath),
    };
    mkdirSync(path.dirname(this.outputFile), { recursive: true });
    writeFileSync(this.outputFile, JSON.stringify(counts, null, 2));
  }
}

module.exports = SummaryReporter;
