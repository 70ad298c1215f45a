/** A course URL with Astro's `base` in front, for links built in components. */
export function coursePath(path: string): string {
  const base = import.meta.env.BASE_URL.replace(/\/$/, '');
  return `${base}${path}`;
}
