import type { BusObserver, BusOptions } from './bus';
import type { BusTopology } from './subjects';

/** The adapter options for a topology: its streams, its commands (for their timeouts) and where dead letters go. */
export function busOptionsFor(topology: BusTopology, observer?: BusObserver): BusOptions {
  return { streams: topology.allStreams, commands: topology.allCommands, deadLetterSubject: (consumer) => topology.deadLetters.subjectFor(consumer), observer };
}
