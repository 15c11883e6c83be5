// Auth rules are numbered differently in each room version; rejections name the number the reader's spec uses.
import type { RoomVersionRules } from '@fedgate/protocol';

export type RuleSection =
  | 'create' | 'room_id' | 'auth_events' | 'federate' | 'aliases' | 'member' | 'sender_joined'
  | 'third_party_invite' | 'required_power' | 'state_key_user' | 'power_levels' | 'redaction' | 'otherwise';

const sectionOrders = new WeakMap<RoomVersionRules, RuleSection[]>();

function sections(rules: RoomVersionRules): RuleSection[] {
  let order = sectionOrders.get(rules);
  if (!order) {
    order = ['create'];
    if (rules.roomIdFromCreateEvent) order.push('room_id');
    order.push('auth_events', 'federate');
    if (rules.specialCaseAliasesAuth) order.push('aliases');
    order.push('member', 'sender_joined', 'third_party_invite', 'required_power', 'state_key_user', 'power_levels');
    if (rules.redactionAuthByEventIdDomain) order.push('redaction');
    order.push('otherwise');
    sectionOrders.set(rules, order);
  }
  return order;
}

export type MemberBranch = 'fields' | 'join_authorised_signature' | 'join' | 'invite' | 'leave' | 'ban' | 'knock' | 'unknown';

function memberBranches(rules: RoomVersionRules): MemberBranch[] {
  const order: MemberBranch[] = ['fields'];
  if (rules.restrictedJoin) order.push('join_authorised_signature');
  order.push('join', 'invite', 'leave', 'ban');
  if (rules.knock) order.push('knock');
  order.push('unknown');
  return order;
}

export type JoinStep = 'creator_first_join' | 'sender_not_target' | 'banned' | 'invite_rule' | 'restricted' | 'public' | 'otherwise';

function joinSteps(rules: RoomVersionRules): JoinStep[] {
  const order: JoinStep[] = ['creator_first_join', 'sender_not_target', 'banned', 'invite_rule'];
  if (rules.restrictedJoin) order.push('restricted');
  order.push('public', 'otherwise');
  return order;
}

export type PowerLevelStep =
  | 'integer_levels' | 'integer_event_levels' | 'users' | 'creators_in_users' | 'no_previous'
  | 'levels_changed' | 'events_removed' | 'events_added' | 'users_removed' | 'users_added' | 'otherwise';

function powerLevelSteps(rules: RoomVersionRules): PowerLevelStep[] {
  const order: PowerLevelStep[] = [];
  if (rules.integerPowerLevels) order.push('integer_levels', 'integer_event_levels');
  order.push('users');
  if (rules.additionalCreators) order.push('creators_in_users');
  order.push('no_previous', 'levels_changed', 'events_removed', 'events_added', 'users_removed', 'users_added', 'otherwise');
  return order;
}

export function ruleNumber(rules: RoomVersionRules, section: RuleSection, ...rest: number[]): string {
  return [sections(rules).indexOf(section) + 1, ...rest].join('.');
}

export function memberRuleNumber(rules: RoomVersionRules, branch: MemberBranch, ...rest: number[]): string {
  return ruleNumber(rules, 'member', memberBranches(rules).indexOf(branch) + 1, ...rest);
}

export function joinRuleNumber(rules: RoomVersionRules, step: JoinStep, ...rest: number[]): string {
  return memberRuleNumber(rules, 'join', joinSteps(rules).indexOf(step) + 1, ...rest);
}

export function powerLevelRuleNumber(rules: RoomVersionRules, step: PowerLevelStep, ...rest: number[]): string {
  return ruleNumber(rules, 'power_levels', powerLevelSteps(rules).indexOf(step) + 1, ...rest);
}
