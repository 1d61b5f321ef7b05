/**
 * Where a credential comes from: the configuration itself, an SSM parameter (SecureString), or a
 * Secrets Manager secret (its whole string, or one field of its JSON). `variable` is the setting
 * that named it, for error messages; the value itself is never logged or shown.
 */
export type SecretRef =
  | { source: 'value'; variable: string; value: string }
  | { source: 'ssm'; variable: string; name: string }
  | { source: 'secrets-manager'; variable: string; id: string; field?: string };

/** How GET /api/v1/config shows a credential: where it comes from, never what it is. */
export function describeSecretRef(ref: SecretRef | undefined): string | null {
  if (!ref) return null;
  switch (ref.source) {
    case 'value':
      return '[redacted]';
    case 'ssm':
      return `ssm:${ref.name}`;
    case 'secrets-manager':
      return `secretsmanager:${ref.id}${ref.field ? `#${ref.field}` : ''}`;
  }
}

/** The credential given either as a value or as a reference, from the validated settings (both at once is refused there). */
export function secretRef(
  valueVariable: string,
  value: string | undefined,
  reference?: { variable: string; ssm?: string; secretsManager?: string; field?: string },
): SecretRef | undefined {
  if (value !== undefined) return { source: 'value', variable: valueVariable, value };
  if (reference?.ssm) return { source: 'ssm', variable: reference.variable, name: reference.ssm };
  if (reference?.secretsManager)
    return { source: 'secrets-manager', variable: reference.variable, id: reference.secretsManager, field: reference.field };
  return undefined;
}
