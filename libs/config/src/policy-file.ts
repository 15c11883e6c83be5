// Reads the operator's federation policy file (YAML, or JSON, which YAML reads too) and compiles it.
import { readFile } from 'node:fs/promises';
import { compilePolicy, PolicyError, type CompiledPolicy } from '@fedgate/protocol';
import { parseDocument } from 'yaml';

/** Parses and validates policy text; throws PolicyError naming every problem (`source` names the file). */
export function parsePolicyText(text: string, source: string): CompiledPolicy {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new PolicyError([`${source} is not valid YAML or JSON: ${document.errors[0]!.message}`]);
  try {
    return compilePolicy(document.toJS());
  } catch (error) {
    if (error instanceof PolicyError) throw new PolicyError(error.problems.map((p) => `${source}: ${p}`));
    throw error;
  }
}

export async function readPolicyFile(file: string): Promise<CompiledPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PolicyError([`cannot read policy file ${file}: ${(error as Error).message}`]);
  }
  return parsePolicyText(text, file);
}
