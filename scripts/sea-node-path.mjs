// Prints the pinned runtime's path (scripts/sea-node.mjs), for shell scripts.
import { seaNode } from './sea-node.mjs';

process.stdout.write(`${seaNode()}\n`);
