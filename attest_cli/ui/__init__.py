"""Terminal presentation: progress views are observers of run events, like the others."""
