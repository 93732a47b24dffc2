// spl do "<text>" [--thread ID] [--body JSON] [--actor DID] [--fulfills ID]
import { emitCommand } from "../lib/cli/emit";

export default emitCommand("DO");
