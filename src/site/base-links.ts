/**
 * Lessons write course links root-relative ("/lessons/cache-strategies/"). When the site is
 * published under a sub-path (GitHub Pages project sites: `base: '/repo/'`), those links must
 * carry the base; this Sätteri HAST plugin adds it at build time so authors never write it.
 */
export function withBase(href: string, base: string): string {
  if (!href.startsWith('/') || href.startsWith('//')) return href;
  const prefix = base.endsWith('/') ? base.slice(0, -1) : base;
  if (prefix === '' || href === prefix || href.startsWith(`${prefix}/`)) return href;
  return `${prefix}${href}`;
}

interface HastElement {
  properties?: Record<string, unknown>;
}

interface SatteriContext {
  setProperty(node: HastElement, name: string, value: unknown): void;
}

export function satteriBaseLinksPlugin(base: string) {
  return {
    name: 'course-base-links',
    element: [
      {
        filter: ['a'],
        visit(node: HastElement, ctx: SatteriContext) {
          const href = node.properties?.href;
          if (typeof href === 'string' && withBase(href, base) !== href)
            ctx.setProperty(node, 'href', withBase(href, base));
        },
      },
    ],
  };
}
