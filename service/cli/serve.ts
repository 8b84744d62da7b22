// `tollgate serve`: the ext_proc service, configured by the environment only.
import { parse } from './args.ts';

export async function runServe(args: string[]): Promise<void> {
  parse(args, {});
  const { serve } = await import('../main.ts');
  await serve();
}
