// Redactions applied to their targets. The stored PDU is never changed (the event log is append-only and
// the redacted form keeps the hashes other servers check); readers serve the redacted form of any event
// whose `EventRecord.redactedBy` is set. A redaction may arrive before its target, so an accepted
// redaction is remembered as a claim on its target until the target is stored and the claim checked.

export interface RedactionClaim {
  redactionEventId: string;
  targetEventId: string;
  /** The redaction's room: a claim only applies to a target in the same room. */
  roomId: string;
}

export interface RedactionRepository {
  /** Remembers an accepted redaction of `targetEventId`. Idempotent. */
  addClaim(claim: RedactionClaim): Promise<void>;
  /** The claims naming `targetEventId`, in the order they were added. */
  claimsOn(targetEventId: string): Promise<RedactionClaim[]>;
  /**
   * The targets of the room's claims (`roomId`: the redactions' room) that are not redacted: the only events whose
   * arrival in the room can apply a claim. Each target once, in no given order.
   */
  openClaimTargets(roomId: string): Promise<string[]>;
  /**
   * Marks the stored target as redacted by the claim's redaction (after the caller checked it is allowed).
   * The first applied redaction stays. Returns whether the target became redacted now (false when it is not
   * stored or was redacted already).
   */
  apply(claim: RedactionClaim): Promise<boolean>;
}
