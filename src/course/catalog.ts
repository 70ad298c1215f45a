import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ExerciseSchema, type Exercise } from './exercise-schema.ts';
import { METADATA_DIR } from './paths.ts';

/** A content file that does not satisfy its schema; the message names the file and the fix. */
export class ContentError extends Error {
  override name = 'ContentError';
}

/** Parses `data` with `schema`, or throws a ContentError that names `file` and each bad field. */
export function parseContent<S extends z.ZodType>(schema: S, data: unknown, file: string): z.infer<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new ContentError(`${path.relative(process.cwd(), file)} is invalid:\n${z.prettifyError(result.error)}`);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ContentError(`${path.relative(process.cwd(), file)} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Every exercise's metadata record, validated, in course order. */
export function loadExercises(dir: string = METADATA_DIR): Exercise[] {
  const files = fs.readdirSync(dir).filter((name) => name.endsWith('.json'));
  const exercises = files.map((name) => {
    const file = path.join(dir, name);
    const exercise = parseContent(ExerciseSchema, readJson(file), file);
    if (`${exercise.slug}.json` !== name) {
      throw new ContentError(`${name}: slug "${exercise.slug}" must match the file name (${exercise.slug}.json).`);
    }
    return exercise;
  });
  const orders = new Map<number, string>();
  for (const exercise of exercises) {
    const other = orders.get(exercise.order);
    if (other) throw new ContentError(`${exercise.slug}.json and ${other}.json both have order ${exercise.order}.`);
    orders.set(exercise.order, exercise.slug);
  }
  return exercises.sort((a, b) => a.order - b.order);
}
