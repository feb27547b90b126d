//! Courses: the `courses` tree and a cache of decoded courses (a course is
//! read by every mark and join, to check enrolment and teachers).
//!
//! Lock: the cache's lock is a leaf lock; writes invalidate under the
//! store's write lock.

use std::sync::Arc;

use super::cache::Cache;
use super::codec::Table;
use super::error::StoreError;
use super::flusher::Writing;
use super::model::Course;

/// The courses.
pub(super) struct Courses {
    courses: Table<Course>,
    cache: Cache<Course>,
}

impl Courses {
    /// Opens the courses' tree of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Courses, StoreError> {
        Ok(Courses {
            courses: Table::open(db, "courses", "course")?,
            cache: Cache::new(),
        })
    }

    /// Creates a course (its id must be new).
    pub(super) fn create(&self, _w: &Writing<'_>, course: &Course) -> Result<(), StoreError> {
        self.courses.create(&course.id, course)?;
        self.cache.invalidate(&course.id);
        Ok(())
    }

    /// A course by id (shared: decoded once, until the course changes).
    pub(super) fn get(&self, id: &str) -> Result<Option<Arc<Course>>, StoreError> {
        self.cache.get(id, || self.courses.get(id))
    }

    /// All courses.
    pub(super) fn all(&self) -> Result<Vec<Course>, StoreError> {
        self.courses.all()
    }

    /// Every course, shared from the cache (a key scan; each course is
    /// decoded once, until it changes).
    pub(super) fn all_cached(&self) -> Result<Vec<Arc<Course>>, StoreError> {
        let mut out = Vec::new();
        for key in self.courses.tree().iter().keys() {
            let key = key?;
            if let Some(c) = self.get(&String::from_utf8_lossy(&key))? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Changes a course in place.
    pub(super) fn update(
        &self,
        _w: &Writing<'_>,
        id: &str,
        f: impl Fn(&mut Course),
    ) -> Result<Course, StoreError> {
        let course = self.courses.update(id, f)?;
        self.cache.invalidate(id);
        Ok(course)
    }

    /// Refuses a student not enrolled in course `course_id` (`course`
    /// keeps the course across calls).
    pub(super) fn require_enrolled(
        &self,
        course_id: &str,
        student_id: &str,
        course: &mut Option<Arc<Course>>,
    ) -> Result<(), StoreError> {
        if course.is_none() {
            *course = self.get(course_id)?;
        }
        match course {
            Some(c) if c.students.iter().any(|s| s == student_id) => Ok(()),
            _ => Err(StoreError::NotFound("student in session")),
        }
    }
}
