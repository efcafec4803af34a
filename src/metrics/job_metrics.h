#pragma once
// The job metrics of a process that folds the event log into a job book: what the book's visible events
// and its states say, in the Metrics' terms. Kept apart from metrics.h so that Metrics stays free of the
// domain's types.

#include <vector>

#include "core/job_book.h"
#include "metrics/metrics.h"

namespace framepress::metrics {

/// Counts the live events the book made visible: a job.created as created, a terminal event (completed,
/// failed, cancelled, deleted) as ended in that state. Call it only for events folded after the replay.
void count_job_events(Metrics& metrics, const std::vector<VisibleEvent>& visible);

/// Sets framepress_jobs{state} from the book's counts now.
void set_jobs_from(Metrics& metrics, const JobBook& book);

}  // namespace framepress::metrics
