/**
 * The command table of `fednode`. To add a command (`infer`, `models`, `propose`,
 * `patterns`, `log`, `approve`, `simnet`): write cli/commands/<name>.ts exporting a
 * `Command` (cli/command.ts) and add it below; help, --json, usage errors and exit
 * codes come for free.
 */
import type { Command } from '../command.js';
import { clusterCommand } from './cluster.js';
import { doctorCommand } from './doctor.js';
import { initCommand } from './init.js';
import { inviteCommand } from './invite.js';
import { joinCommand } from './join.js';
import { peersCommand } from './peers.js';
import { startCommand } from './start.js';
import { statusCommand } from './status.js';
import { inferCommand, modelsCommand } from './infer.js';
import { simnetCommand } from './simnet.js';
import { proposeCommand } from './propose.js';
import { patternsCommand } from './patterns.js';
import { logCommand } from './log.js';
import { approveCommand } from './approve.js';
import { routeCommand } from './route.js';
import { topCommand } from './top.js';
import { serviceCommand } from './service.js';

export const COMMANDS: readonly Command[] = [initCommand, startCommand, inviteCommand, joinCommand, statusCommand, peersCommand, doctorCommand, clusterCommand, inferCommand, modelsCommand, proposeCommand, patternsCommand, logCommand, approveCommand, routeCommand, topCommand, serviceCommand, simnetCommand];
