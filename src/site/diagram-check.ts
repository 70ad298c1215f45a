import type { Problem } from '../course/course-model.ts';

/**
 * Checks on the inline SVG diagrams of a built lesson page. The HTML is Astro's own output, so a small
 * tokenizer over the SVG markup is enough; nothing here renders anything.
 */

/** A 360 px phone leaves about 328 px for a figure once Starlight's page padding is taken off. */
export const PHONE_FIGURE_PX = 328;
/** Smallest rendered text size, in CSS px, that stays legible on that phone. */
export const MIN_TEXT_PX = 9;
/** Every lesson needs at least this many diagrams (issue 17). */
export const MIN_DIAGRAMS = 3;
/** What an SVG text gets when neither it nor an ancestor sets a size: the browser default. */
const DEFAULT_FONT_SIZE = 16;

type Attributes = Record<string, string>;

/** One `<text>` or `<tspan>` with what it inherits from its ancestors inside the svg. */
export interface SvgText {
  fontSize: number;
  /** The effective fill and stroke (own attribute or style, else the nearest ancestor's). */
  fill: string | undefined;
  stroke: string | undefined;
  content: string;
}

/** One inline `<svg>` of a page. */
export interface InlineSvg {
  attributes: Attributes;
  /** The `<title>` and `<desc>` elements that have an id, by id. */
  labels: Map<string, { tag: 'title' | 'desc'; text: string }>;
  /** The svg's first `<title>`, to name it in messages. */
  title: string;
  texts: SvgText[];
  /** Whether it sits inside a `<figure>`. */
  inFigure: boolean;
}

const ENTITIES: Record<string, string> = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', nbsp: ' ' };
const decode = (value: string) =>
  value.replace(/&(#x[\da-f]+|#\d+|\w+);/gi, (all, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
      return String.fromCodePoint(code);
    }
    return ENTITIES[name] ?? all;
  });

function parseAttributes(source: string): Attributes {
  const attributes: Attributes = {};
  for (const match of source.matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    attributes[(match[1] ?? '').toLowerCase()] = decode(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attributes;
}

/** A presentation property from the `style` attribute (which wins) or the attribute itself. */
function property(attributes: Attributes, name: string): string | undefined {
  const style = attributes.style ?? '';
  const fromStyle = new RegExp(`(?:^|;)\\s*${name}\\s*:\\s*([^;]+)`, 'i').exec(style)?.[1]?.trim();
  return fromStyle ?? attributes[name];
}

/** A font-size in user units: a number or px, or em and % relative to the inherited size. */
function fontSize(value: string | undefined, inherited: number): number {
  if (value === undefined) return inherited;
  const match = /^\s*([\d.]+)\s*(px|em|%)?\s*$/i.exec(value);
  if (!match) return inherited;
  const size = Number(match[1]);
  const unit = match[2]?.toLowerCase();
  if (unit === 'em') return size * inherited;
  if (unit === '%') return (size / 100) * inherited;
  return size;
}

interface Frame {
  tag: string;
  fontSize: number;
  fill: string | undefined;
  stroke: string | undefined;
}

const TAG = /<!--[\s\S]*?-->|<(\/?)([a-zA-Z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;

/** Every inline svg of a page, with the inherited font size and colours of each of its texts. */
export function parseSvgs(html: string): InlineSvg[] {
  const svgs: InlineSvg[] = [];
  let figureDepth = 0;
  let svg: InlineSvg | undefined;
  let stack: Frame[] = [];
  // The label (title, desc) and the texts, innermost last, whose characters are being collected.
  let label: { id: string | undefined; tag: 'title' | 'desc'; text: string } | undefined;
  let texts: { frame: Frame; content: string }[] = [];
  let last = 0;

  for (const match of html.matchAll(TAG)) {
    const between = html.slice(last, match.index);
    last = match.index + match[0].length;
    if (label) label.text += between;
    const innermost = texts.at(-1);
    if (innermost) innermost.content += between;
    if (match[0].startsWith('<!--')) continue;

    const closing = match[1] === '/';
    const tag = (match[2] ?? '').toLowerCase();
    const selfClosing = match[4] === '/';

    if (!svg) {
      if (tag === 'figure') figureDepth += closing ? -1 : 1;
      if (tag === 'svg' && !closing) {
        const attributes = parseAttributes(match[3] ?? '');
        svg = { attributes, labels: new Map(), title: '', texts: [], inFigure: figureDepth > 0 };
        texts = [];
        stack = [
          {
            tag,
            fontSize: fontSize(property(attributes, 'font-size'), DEFAULT_FONT_SIZE),
            fill: property(attributes, 'fill'),
            stroke: property(attributes, 'stroke'),
          },
        ];
        if (selfClosing) {
          svgs.push(svg);
          svg = undefined;
        }
      }
      continue;
    }

    if (closing) {
      if (label && tag === label.tag) {
        const value = decode(label.text).replace(/\s+/g, ' ').trim();
        if (label.id !== undefined) svg.labels.set(label.id, { tag: label.tag, text: value });
        if (label.tag === 'title' && svg.title === '') svg.title = value;
        label = undefined;
      }
      if (innermost && tag === innermost.frame.tag) {
        texts.pop();
        const content = decode(innermost.content).replace(/\s+/g, ' ').trim();
        // A tspan is measured by its own size; empty text draws nothing to read.
        if (content) svg.texts.push({ ...innermost.frame, content });
      }
      // Pop to the matching element; tolerant of an unclosed child.
      const at = stack.map((frame) => frame.tag).lastIndexOf(tag);
      if (at >= 0) stack = stack.slice(0, at);
      if (tag === 'svg') {
        svgs.push(svg);
        svg = undefined;
      }
      continue;
    }

    const attributes = parseAttributes(match[3] ?? '');
    const parent = stack.at(-1) as Frame;
    const frame: Frame = {
      tag,
      fontSize: fontSize(property(attributes, 'font-size'), parent.fontSize),
      fill: property(attributes, 'fill') ?? parent.fill,
      stroke: property(attributes, 'stroke') ?? parent.stroke,
    };
    if ((tag === 'title' || tag === 'desc') && !selfClosing) label = { id: attributes.id, tag, text: '' };
    if ((tag === 'text' || tag === 'tspan') && !selfClosing) texts.push({ frame, content: '' });
    if (!selfClosing) stack.push(frame);
  }
  return svgs;
}

/** Width in user units from the viewBox, or undefined when there is none. */
function viewBoxWidth(svg: InlineSvg): number | undefined {
  const parts = (svg.attributes.viewbox ?? '')
    .trim()
    .split(/[\s,]+/)
    .map(Number);
  const width = parts[2];
  return parts.length === 4 && width !== undefined && width > 0 ? width : undefined;
}

/** The width the svg renders at on the phone: the figure's width, or less if its CSS caps it. */
function phoneWidth(svg: InlineSvg): number {
  const caps = [PHONE_FIGURE_PX];
  const maxWidth = /^\s*([\d.]+)px\s*$/i.exec(property(svg.attributes, 'max-width') ?? '')?.[1];
  if (maxWidth) caps.push(Number(maxWidth));
  const width = /^\s*([\d.]+)(?:px)?\s*$/i.exec(svg.attributes.width ?? '')?.[1];
  if (width) caps.push(Number(width));
  return Math.min(...caps);
}

const name = (svg: InlineSvg) => (svg.title ? `"${svg.title}"` : 'an untitled svg');

/** (a) Enough diagrams, each a figure holding an svg role="img" labelled by a non-empty title and desc. */
export function diagramCountProblems(html: string, lesson: string, file: string): Problem[] {
  const problems: Problem[] = [];
  let diagrams = 0;
  for (const svg of parseSvgs(html)) {
    if (svg.attributes.role !== 'img') continue;
    const ids = (svg.attributes['aria-labelledby'] ?? '').split(/\s+/).filter(Boolean);
    const named = ids.map((id) => svg.labels.get(id));
    const missing = ids.filter((_, index) => !named[index]?.text);
    const labelled =
      missing.length === 0 &&
      named.some((label) => label?.tag === 'title') &&
      named.some((label) => label?.tag === 'desc');
    if (!labelled) {
      const why =
        missing.length > 0
          ? `aria-labelledby names ${missing.map((id) => `#${id}`).join(', ')}, which is not a non-empty <title> or <desc> inside it`
          : 'it needs aria-labelledby="<id>-title <id>-desc" naming its own non-empty <title> and <desc>';
      problems.push({ file, message: `${lesson}: the diagram ${name(svg)} has no text alternative: ${why}.` });
      continue;
    }
    if (!svg.inFigure) {
      problems.push({ file, message: `${lesson}: the diagram ${name(svg)} is not inside a <figure> with a caption.` });
      continue;
    }
    diagrams += 1;
  }
  if (diagrams < MIN_DIAGRAMS)
    problems.push({
      file,
      message: `${lesson} has ${diagrams} labelled diagram${diagrams === 1 ? '' : 's'}; every lesson needs at least ${MIN_DIAGRAMS}. Add a <figure> with an inline <svg role="img" aria-labelledby="…-title …-desc"> where a picture explains better than prose.`,
    });
  return problems;
}

/** (b) Every text of every svg is at least MIN_TEXT_PX on a phone; one problem per svg, for its smallest text. */
export function phoneWidthProblems(html: string, lesson: string, file: string): Problem[] {
  const problems: Problem[] = [];
  for (const svg of parseSvgs(html)) {
    if (svg.texts.length === 0) continue;
    const viewWidth = viewBoxWidth(svg);
    const rendered = phoneWidth(svg);
    // Without a viewBox the svg is not scaled: a user unit is a CSS px.
    const scale = viewWidth === undefined ? 1 : rendered / viewWidth;
    const smallest = Math.min(...svg.texts.map((text) => text.fontSize));
    const px = smallest * scale;
    if (px >= MIN_TEXT_PX - 1e-9) continue;
    const sample = svg.texts.find((text) => text.fontSize === smallest)?.content ?? '';
    const fixes =
      viewWidth === undefined
        ? `raise the font-size to at least ${MIN_TEXT_PX}`
        : `narrow the viewBox to at most ${Math.floor((smallest * rendered) / MIN_TEXT_PX)} wide (lay it out taller), or raise that font-size to at least ${Math.ceil((MIN_TEXT_PX * viewWidth) / rendered)}`;
    problems.push({
      file,
      message: `${lesson}: the diagram ${name(svg)} has text at font-size ${smallest} ("${sample}") in a viewBox ${viewWidth ?? 'that is missing'} wide, which renders at ${px.toFixed(1)} px in the ${rendered} px a 360 px phone gives it; text needs at least ${MIN_TEXT_PX} px. Fix: ${fixes}.`,
    });
  }
  return problems;
}

const FIXED_COLOUR =
  /^(?:black|white|#000|#000000|#fff|#ffffff|rgb\(\s*0\s*,\s*0\s*,\s*0\s*\)|rgb\(\s*255\s*,\s*255\s*,\s*255\s*\))$/i;

/** (c) No svg text is painted black or white, which vanishes against one of the two themes. */
export function colourProblems(html: string, lesson: string, file: string): Problem[] {
  const problems: Problem[] = [];
  for (const svg of parseSvgs(html)) {
    const fixed = svg.texts.flatMap((text) =>
      [text.fill, text.stroke]
        .filter((colour): colour is string => colour !== undefined && FIXED_COLOUR.test(colour.trim()))
        .map((colour) => ({ colour, text })),
    );
    const first = fixed[0];
    if (!first) continue;
    problems.push({
      file,
      message: `${lesson}: the diagram ${name(svg)} paints text "${first.text.content}" in ${first.colour}${fixed.length > 1 ? ` (and ${fixed.length - 1} more)` : ''}, which vanishes in the light or the dark theme. Use currentColor or a Starlight variable such as var(--sl-color-text-accent).`,
    });
  }
  return problems;
}

/** All three checks over one built lesson page. */
export function checkLessonDiagrams(html: string, lesson: string, file: string): Problem[] {
  return [
    ...diagramCountProblems(html, lesson, file),
    ...phoneWidthProblems(html, lesson, file),
    ...colourProblems(html, lesson, file),
  ];
}
