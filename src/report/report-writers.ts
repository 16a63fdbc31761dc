/**
 * What the reporter renders and writes with, behind one dynamic import (reporter.ts's
 * loadReportWriters): the Markdown report, the PR comment, the GitHub Deployment, the job summary,
 * the step outputs.
 */
export { createDeployment, deploymentDescription, deploymentStateOf, setDeploymentStatus } from './github-deployments.js'
export { writeJobSummary } from './job-summary.js'
export { upsertPullRequestComment } from './pr-comment.js'
export { annotationOf, writeAnnotation, writeOutputs } from './outputs.js'
export { reportMarker, renderPlainLog } from './render-report.js'
