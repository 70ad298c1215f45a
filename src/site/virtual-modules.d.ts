declare module 'virtual:course-data' {
  const data: import('./course-data.ts').CourseData;
  export default data;
}
