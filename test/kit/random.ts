/** Random test data, so that no answer can be hard-coded. Not for anything security-related. */
import { randomBytes, randomInt } from 'node:crypto';

export const randomId = (prefix = 'id') => `${prefix}-${randomBytes(4).toString('hex')}`;
export const randomInteger = (min: number, max: number) => randomInt(min, max + 1);

const WORDS = ['amber', 'basalt', 'cedar', 'delta', 'ember', 'fjord', 'garnet', 'harbor', 'iris', 'jade', 'kelp', 'lumen', 'maple', 'nova', 'onyx', 'pine', 'quartz', 'rune', 'sage', 'tide'];
export const randomWord = () => WORDS[randomInt(WORDS.length)]!;
export const randomText = (words = 4) => Array.from({ length: words }, randomWord).join(' ');

export function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
