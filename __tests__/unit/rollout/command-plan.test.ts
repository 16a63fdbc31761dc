import { planCommand, type CommandPlan, type CommandSituation } from '../../../src/rollout/command-plan.js'
import type { Phase } from '../../../src/rollout/types.js'
import { makeRolloutState } from '../../fixtures/istio/rollout-state.js'

const at = (phase: Phase) => makeRolloutState({ phase })
/** Promoted, but the old version was kept: another route still sent traffic to it. */
const held = makeRolloutState({
  phase: 'promoted',
  retirement: { version: 'v1', subset: 'v1', retired: false, heldBy: ['VirtualService shop/other route #0'] }
})
const base = { target: 'shop/web', full: false, supersede: false }
const plan = (s: Partial<CommandSituation> & Pick<CommandSituation, 'command'>): CommandPlan => planCommand({ ...base, ...s })
/** The plan as one short word, for the table. */
function word(p: CommandPlan): string {
  if (p.kind === 'run') return `${p.recover ? `${p.recover}+` : ''}${p.then}`
  return p.kind === 'nothing' ? `nothing(${p.result})` : 'refuse'
}

describe('planCommand: the preconditions of every command, as a table', () => {
  // The state in the fixture is a rollout of v2.
  it.each<[string, Partial<CommandSituation> & Pick<CommandSituation, 'command'>, string]>([
    ['deploy, nothing there', { command: 'deploy', version: 'v2' }, 'start'],
    ['deploy after a finished rollout', { command: 'deploy', version: 'v3', state: at('promoted') }, 'start'],
    ['deploy the same version again (a re-run)', { command: 'deploy', version: 'v2', state: at('progressing') }, 'resume'],
    ['deploy the same version, paused', { command: 'deploy', version: 'v2', state: at('paused') }, 'nothing(paused)'],
    ['deploy another version mid-rollout', { command: 'deploy', version: 'v3', state: at('progressing') }, 'refuse'],
    [
      'deploy another version mid-rollout, supersede',
      { command: 'deploy', version: 'v3', state: at('progressing'), supersede: true },
      'supersede+start'
    ],
    ['deploy while a rollback is under way', { command: 'deploy', version: 'v2', state: at('rolling-back') }, 'rolling-back+start'],
    ['deploy, took over a dead run', { command: 'deploy', version: 'v2', state: at('progressing'), takeover: true }, 'takeover+start'],
    ['deploy, took over a paused rollout', { command: 'deploy', version: 'v2', state: at('paused'), takeover: true }, 'nothing(paused)'],
    ['promote without a rollout', { command: 'promote' }, 'refuse'],
    ['promote after it ended', { command: 'promote', state: at('rolled-back') }, 'refuse'],
    ['promote a paused rollout', { command: 'promote', state: at('paused') }, 'promote'],
    ['promote while progressing', { command: 'promote', state: at('progressing') }, 'refuse'],
    ['promote full while progressing', { command: 'promote', state: at('progressing'), full: true }, 'promote'],
    ['promote once the promotion began', { command: 'promote', state: at('promoting') }, 'resume'],
    ['promote while rolling back', { command: 'promote', state: at('rolling-back') }, 'rolling-back+stop'],
    ['promote, took over a dead run', { command: 'promote', state: at('progressing'), takeover: true, full: true }, 'takeover+stop'],
    ['promote another version', { command: 'promote', state: at('paused'), version: 'v3' }, 'refuse'],
    ['promote naming the version in flight', { command: 'promote', state: at('paused'), version: 'v2' }, 'promote'],
    ['abort without a rollout', { command: 'abort' }, 'nothing(unchanged)'],
    ['abort after it ended', { command: 'abort', state: at('aborted'), version: 'v9' }, 'nothing(unchanged)'],
    ['abort mid-rollout', { command: 'abort', state: at('progressing') }, 'abort'],
    ['abort a paused rollout', { command: 'abort', state: at('paused') }, 'abort'],
    ['abort once the promotion began', { command: 'abort', state: at('promoting') }, 'abort'],
    ['abort while rolling back', { command: 'abort', state: at('rolling-back') }, 'rolling-back+stop'],
    ['abort, took over a dead run', { command: 'abort', state: at('progressing'), takeover: true }, 'takeover+stop'],
    ['abort another version', { command: 'abort', state: at('progressing'), version: 'v3' }, 'refuse'],
    ['status', { command: 'status', state: at('progressing') }, 'nothing(unchanged)'],
    ['promote when the old version waits for other routes', { command: 'promote', state: held }, 'retirement+stop'],
    ['deploy when the last rollout kept its old version', { command: 'deploy', version: 'v3', state: held }, 'retirement+start'],
    ['abort when only the retirement is pending', { command: 'abort', state: held }, 'nothing(unchanged)']
  ])('%s -> %s', (_name, situation, expected) => {
    expect(word(plan(situation))).toBe(expected)
  })

  it('says why it refuses, naming the inputs that would change the answer', () => {
    expect(plan({ command: 'promote' })).toEqual({
      kind: 'refuse',
      message: 'There is no rollout to promote on VirtualService "shop/web".'
    })
    expect(plan({ command: 'promote', state: at('rolled-back') })).toEqual({
      kind: 'refuse',
      message: 'There is no rollout to promote on VirtualService "shop/web" (the last one, of "v2", ended rolled-back).'
    })
    expect(plan({ command: 'promote', state: at('progressing') })).toEqual({
      kind: 'refuse',
      message:
        'The rollout of "v2" on "shop/web" is progressing, not paused; promote continues a paused rollout (set input \'full\' to true to go straight to 100 %).'
    })
    expect(plan({ command: 'deploy', version: 'v3', state: at('paused') })).toEqual({
      kind: 'refuse',
      message:
        'VirtualService "shop/web" is mid-rollout of "v2" (phase paused, 50% canary). Promote or abort it first, or set input \'supersede\' to true to roll it back and start "v3".'
    })
    expect(plan({ command: 'abort', state: at('paused'), version: 'v3' })).toEqual({
      kind: 'refuse',
      message:
        'Input \'version\' is "v3" but the rollout in progress on VirtualService "shop/web" is of "v2"; refusing to abort a different version.'
    })
  })

  it('an abort that comes after the promotion began finishes the promotion, and says so', () => {
    expect(plan({ command: 'abort', state: at('promoting') })).toEqual({
      kind: 'run',
      then: 'abort',
      warnings: ['abort came after the promotion had begun: the promotion was finished instead']
    })
  })
})
