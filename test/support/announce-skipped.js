// Jest globalSetup: says up front which suites will be skipped, and how to run them.
module.exports = async () => {
  const missing = [
    ['TEST_DATABASE_URL', 'PostgreSQL', 'postgres://postgres@127.0.0.1:5432/test'],
    ['TEST_REDIS_URL', 'Redis', 'redis://127.0.0.1:6379'],
  ].filter(([variable]) => !process.env[variable]);
  for (const [variable, what, example] of missing) {
    process.stdout.write(`\n${what} tests are skipped: ${variable} is not set (e.g. ${variable}=${example} npm test).\n`);
  }
};
