// Jest in ESM mode (ts-jest + ts-jest-resolver maps the .js imports of NodeNext to .ts).
// Two projects: `unit` needs nothing; `integration` and `e2e` need the local cluster,
// which the global setup starts (or reuses) once for the whole run.
const common = {
  preset: 'ts-jest/presets/default-esm',
  extensionsToTreatAsEsm: ['.ts'],
  resolver: 'ts-jest-resolver',
  testEnvironment: 'node',
  // The local cluster's state (etcd's *.snap files look like Jest snapshots) and binaries.
  modulePathIgnorePatterns: ['<rootDir>/.cluster/', '<rootDir>/.cluster-bin/', '<rootDir>/.bench/'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }]
  }
}

export default {
  reporters: ['default', '<rootDir>/__tests__/support/closing-line-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/__tests__/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/__tests__/integration/**/*.test.ts', '<rootDir>/__tests__/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/__tests__/support/integration-setup.ts']
    }
  ]
}
