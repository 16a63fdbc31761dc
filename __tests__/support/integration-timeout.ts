import { jest } from '@jest/globals'

// testTimeout is a global Jest option, not a per-project one: integration tests set theirs here.
jest.setTimeout(180_000)
