/** Artifact names: <image>-<release>-<branch>-<shorthash>[-dirty]. */

/** Make a git branch name safe for a file name (feature/x -> feature-x). */
export function sanitizeBranch(branch: string): string {
  return (
    branch
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .replace(/-{2,}/g, '-') || 'unknown'
  );
}

export interface ArtifactNameParts {
  image: string;
  release?: string;
  branch: string;
  shortCommit: string;
  dirty: boolean;
}

export function artifactName(p: ArtifactNameParts): string {
  const parts = [p.image];
  if (p.release) parts.push(sanitizeBranch(p.release));
  parts.push(sanitizeBranch(p.branch), p.shortCommit);
  if (p.dirty) parts.push('dirty');
  return parts.join('-');
}

/** URL of a store path on a mirror (each segment percent-encoded). */
export function mirrorUrl(mirror: string, path: string): string {
  return `${mirror.replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}`;
}
