import type { BusObserver, BusOptions } from './bus';
import type { BusTopology } from './subjects';

/** The adapter options for a topology: its streams and where dead letters go. */
export function busOptionsFor(topology: BusTopology, observer?: BusObserver): BusOptions {
  return { streams: topology.allStreams, deadLetterSubject: (consumer) => topology.deadLetters.subjectFor(consumer), observer };
}
