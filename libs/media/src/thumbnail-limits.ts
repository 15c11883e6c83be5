// Bounds on thumbnailing, which decodes whole images (issue 18 defect 11): requested sizes are rounded
// up to a fixed set of edges, so every thumbnail can be cached and one media has a bounded number of
// them; at most a few are made at once per process, with a bounded queue behind them (beyond it:
// 429 M_LIMIT_EXCEEDED); two requests for the same thumbnail share one decode.
import pLimit from 'p-limit';
import { MatrixError } from '@fedgate/service-kit';
import type { ThumbnailRequest } from './thumbnailer';

/** Thumbnail edges served: a request is rounded up to the next one, and capped at the last. */
export const THUMBNAIL_EDGES = [32, 48, 64, 96, 128, 160, 192, 240, 256, 320, 384, 480, 512, 600, 640, 768, 800, 960, 1024, 1280, 1600] as const;
export const MAX_THUMBNAIL_EDGE = THUMBNAIL_EDGES[THUMBNAIL_EDGES.length - 1];

function roundUp(edge: number): number {
  return THUMBNAIL_EDGES.find((candidate) => candidate >= edge) ?? MAX_THUMBNAIL_EDGE;
}

/**
 * The request as served: each edge rounded up to a served edge (capped at MAX_THUMBNAIL_EDGE). The
 * spec lets a server answer with a thumbnail at least as large as asked (clients scale it down).
 */
export function servedThumbnailRequest(request: ThumbnailRequest): ThumbnailRequest {
  return { ...request, width: roundUp(request.width), height: roundUp(request.height) };
}

export interface ThumbnailGateOptions {
  /** Thumbnails made at once. */
  concurrency: number;
  /** Requests waiting for a slot at most; more are refused. */
  maxQueued: number;
}

export const DEFAULT_THUMBNAIL_GATE: ThumbnailGateOptions = { concurrency: 2, maxQueued: 32 };

/** Runs thumbnail work with bounded concurrency (p-limit) and a bounded queue, one run per key at a time. */
export class ThumbnailGate {
  private readonly limit: pLimit.Limit;
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(private readonly options: ThumbnailGateOptions = DEFAULT_THUMBNAIL_GATE) {
    this.limit = pLimit(options.concurrency);
  }

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const same = this.inFlight.get(key);
    if (same) return same as Promise<T>;
    // Running plus waiting: p-limit counts a run as pending from the call, active once it started.
    if (this.limit.activeCount + this.limit.pendingCount >= this.options.concurrency + this.options.maxQueued) {
      return Promise.reject(MatrixError.limitExceeded(1000, 'Too many thumbnails are being made; try again shortly'));
    }
    const tracked = this.limit(work).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, tracked);
    return tracked;
  }
}
