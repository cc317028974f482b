"""The Excel file of a plan: one layout (`layout`), written by `writer` for the export and read back by the
import (`targets.planning.excel`), so the two cannot drift apart."""
